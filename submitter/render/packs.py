"""Find template packs on disk and pick a version by spec (`slurm`, `slurm@1`, `slurm@1.2`)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel, ConfigDict, ValidationError
from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError

from submitter import __version__
from submitter.errors import TemplateError
from submitter.schedulers.registry import NAMES as BATCH_SCHEDULERS
from submitter.schedulers.registry import batch_scheduler

PACK_FILE = "pack.yml"
JOB_TEMPLATE = "job.sh.j2"
# a batch pack's directives for one job: included by its job, array and packed templates, and
# rendered alone for check-host's probe job
HEADER_TEMPLATE = "header.sh.j2"
ARRAY_TEMPLATE = "array.sh.j2"  # optional: a pack that has it can submit tasks as job arrays
PACKED_TEMPLATE = "packed.sh.j2"  # optional: ... and several short tasks in one job
POOL_WRAPPER_TEMPLATE = "wrapper.sh.j2"  # the wrapper pack's: a pool's members run in it
TASK_PARAMS_TEMPLATE = "task-params.sh.j2"  # the wrapper pack's: a task's own values
WRAPPER_FUNCTIONS_TEMPLATE = "wrapper-functions.sh.j2"  # the wrapper pack's: its functions
DEFAULT_PACK_FOR = {
    "local": "wrapper",
    "ssh": "wrapper",
    **{name: batch_scheduler(name).default_pack for name in BATCH_SCHEDULERS},
}


class PackMeta(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    version: str
    min_submitter: str
    description: str
    extends: str | None = None


@dataclass(frozen=True)
class Pack:
    meta: PackMeta
    directory: Path

    @property
    def ident(self) -> str:
        return f"{self.meta.name}@{self.meta.version}"


def version_key(version: str) -> tuple[int, ...]:
    parts: list[int] = []
    for piece in version.split("."):
        parts.append(int(piece) if piece.isdigit() else -1)
    return tuple(parts)


def builtin_pack_root() -> Path:
    """Packs shipped in the wheel, or the repository's templates/ in a source checkout."""
    here = Path(__file__).resolve().parent.parent
    for candidate in (here / "templates", here.parent / "templates"):
        if candidate.is_dir():
            return candidate
    raise TemplateError("the built-in template packs are missing from this installation")


def pack_roots(project_dir: Path | None) -> list[Path]:
    """Search order: $SUBMITTER_PACK_PATH, <project>/packs, ~/.config/submitter/packs, built-in."""
    from submitter.config.locations import user_config_dir

    roots: list[Path] = []
    for entry in os.environ.get("SUBMITTER_PACK_PATH", "").split(os.pathsep):
        if entry:
            roots.append(Path(entry).expanduser())
    if project_dir is not None:
        roots.append(project_dir / "packs")
    roots.append(user_config_dir() / "packs")
    roots.append(builtin_pack_root())
    return [root for root in roots if root.is_dir()]


def parse_spec(spec: str) -> tuple[str, str | None]:
    name, _, version = spec.partition("@")
    return name.strip(), (version.strip() or None)


def _matches(version: str, wanted: str | None) -> bool:
    if wanted is None:
        return True
    have, want = version.split("."), wanted.split(".")
    return have[: len(want)] == want


def find_pack(spec: str, project_dir: Path | None) -> Pack:
    """The newest matching version in the first root that has the pack at all."""
    name, wanted = parse_spec(spec)
    for root in pack_roots(project_dir):
        folder = root / name
        if not folder.is_dir():
            continue
        candidates = [load_pack(d) for d in folder.iterdir() if (d / PACK_FILE).is_file()]
        matching = [p for p in candidates if _matches(p.meta.version, wanted)]
        if matching:
            best = max(matching, key=lambda p: version_key(p.meta.version))
            check_compatible(best)
            return best
        if candidates:
            have = ", ".join(sorted(p.meta.version for p in candidates))
            raise TemplateError(f"pack '{spec}': no version matches in {folder} (have: {have})")
    raise TemplateError(
        f"template pack '{name}' not found (searched: "
        + ", ".join(str(r) for r in pack_roots(project_dir))
        + ")"
    )


def load_pack(directory: Path) -> Pack:
    path = directory / PACK_FILE
    try:
        data = YAML(typ="safe").load(path.read_text(encoding="utf-8"))
        meta = PackMeta.model_validate(data)
    except (YAMLError, ValidationError, OSError) as exc:
        raise TemplateError(f"{path}: invalid pack description: {exc}") from None
    if meta.name != directory.parent.name:
        raise TemplateError(
            f"{path}: name '{meta.name}' does not match folder '{directory.parent.name}'"
        )
    return Pack(meta, directory)


def check_compatible(pack: Pack) -> None:
    if version_key(__version__) < version_key(pack.meta.min_submitter):
        raise TemplateError(
            f"pack {pack.ident} needs submitter >= {pack.meta.min_submitter}, this is {__version__}"
        )


def pack_chain(pack: Pack, project_dir: Path | None) -> list[Pack]:
    """The pack followed by the packs it extends (their templates can be included)."""
    chain = [pack]
    seen = {pack.ident}
    while chain[-1].meta.extends:
        parent = find_pack(chain[-1].meta.extends, project_dir)
        if parent.ident in seen:
            raise TemplateError(f"pack {pack.ident}: 'extends' forms a cycle")
        seen.add(parent.ident)
        chain.append(parent)
    return chain
