from submitter.cli import main

raise SystemExit(main())
