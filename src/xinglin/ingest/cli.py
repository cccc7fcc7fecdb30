"""``xinglin ingest``: hospital exports in, FHIR records out.

    xinglin ingest FILE... --tenant CODE [--profile P.yaml] [--report R.json|R.html] [--dry-run]
    xinglin ingest suggest-profile FILE > P.yaml
    xinglin ingest reviews --tenant CODE
    xinglin ingest resolve TASK_ID --tenant CODE --decision merge|separate

Registered by the main app as ``app.add_typer(ingest_command, name="ingest")``. ``ingest`` is a group
whose default command takes the files, so both forms above work.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import click
import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table
from typer.core import TyperGroup

from xinglin.ingest.profile import Profile, infer_profile
from xinglin.ingest.readers import open_source
from xinglin.ingest.report import IngestReport

console = Console(soft_wrap=True)
err_console = Console(stderr=True, soft_wrap=True)


class _DefaultGroup(TyperGroup):
    """A group that runs ``run`` when the first argument is not one of its commands (``ingest FILE ...``)."""

    default_command = "run"

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ("--help", "-h"):
            args = [self.default_command, *args]
        return super().parse_args(ctx, args)


ingest_command = typer.Typer(
    cls=_DefaultGroup,
    no_args_is_help=True,
    add_completion=False,
    help="导入医院导出数据 / Ingest hospital exports: FILE... --tenant CODE, or a subcommand.",
)


def _store():
    from xinglin.core.config import get_settings
    from xinglin.store.db import make_engine
    from xinglin.store.repository import Store

    settings = get_settings()
    return Store(make_engine(settings.database_url), settings)


@ingest_command.command("run", hidden=True)
def run_command(
    files: Annotated[list[Path], typer.Argument(help="CSV/TSV, .xlsx, .jsonl or HL7 v2 files", exists=True)],
    tenant: Annotated[str, typer.Option(help="Tenant code")],
    profile: Annotated[Path | None, typer.Option(help="Mapping profile (YAML); inferred when absent")] = None,
    report: Annotated[Path | None, typer.Option(help="Write the report to R.json or R.html")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Read, check and match, write nothing")] = False,
    source: Annotated[str | None, typer.Option(help="Source name (default: the profile's, else the file name)")] = None,
    encoding: Annotated[str | None, typer.Option(help="File encoding (default: detected)")] = None,
    chunk_rows: Annotated[
        int, typer.Option(min=1, help="Rows written per transaction (a kill loses at most the chunks in flight)")
    ] = 2000,
    writers: Annotated[
        int | None,
        typer.Option(min=0, help="Writer processes (default: 2 on PostgreSQL for long files, else 0 = this one)"),
    ] = None,
) -> None:
    """Ingest files into a tenant."""
    from xinglin.ingest.service import ingest

    prof = Profile.load(profile) if profile else None
    with Progress(
        TextColumn("[bold]导入 / ingest[/bold]"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=err_console,
        transient=True,
    ) as bar:
        task = bar.add_task("rows", total=None)
        result = ingest(
            _store(),
            tenant,
            files,
            profile=prof,
            dry_run=dry_run,
            source_name=source,
            encoding=encoding,
            chunk_rows=chunk_rows,
            writers=writers,
            on_total=lambda n: bar.update(task, total=n),
            progress=lambda n: bar.advance(task, n),
        )
    if report:
        result.write(report)
    _summary(result, report)


def _summary(r: IngestReport, report: Path | None) -> None:
    table = Table(title="导入结果 / Ingest summary" + ("（试运行 / dry run）" if r.dry_run else ""))
    table.add_column("")
    table.add_column("", justify="right")
    for label, value in (
        ("读取行 / rows read", r.rows_read),
        ("新建患者的行 / rows stored", r.rows_stored),
        ("匹配已有患者的行 / rows matched", r.rows_matched),
        ("  其中此前已导入 / already ingested", r.rows_already_ingested),
        ("拒收行 / rows rejected", r.rows_rejected),
        ("新建患者 / patients created", r.patients_created),
        ("匹配的已有患者 / patients matched", r.patients_matched),
        ("待复核 / sent to review", r.reviews_created),
        ("写入资源 / resources written", r.resources_written),
    ):
        table.add_row(label, str(value))
    console.print(table)
    for rej in r.rejections[:10]:
        where = f"{rej.file}:{rej.row}" + (f":{rej.segment}" if rej.segment else "")
        console.print(f"[yellow]拒收 / rejected {where} {rej.field}: {rej.reason_zh} / {rej.reason_en}[/yellow]")
    if r.rows_rejected > 10:
        console.print(f"… {r.rows_rejected - 10} more" + (f" in {report}" if report else " (use --report)"))
    if report:
        console.print(f"报告 / report: {report}")


def suggest_profile_command(
    file: Annotated[Path, typer.Argument(help="A source file", exists=True, dir_okay=False)],
    encoding: Annotated[str | None, typer.Option(help="File encoding (default: detected)")] = None,
    source: Annotated[str | None, typer.Option(help="Source name to put in the profile")] = None,
) -> None:
    """Print a mapping profile inferred from the file's headers (YAML, for review)."""
    src = open_source(file, encoding=encoding)
    prof = infer_profile(src.headers, format=src.format, source=source or file.stem)
    if encoding or src.encoding not in (None, "utf-8", "utf-8-sig"):
        prof = prof.model_copy(update={"encoding": encoding or src.encoding})
    if src.delimiter and src.delimiter not in (",", "\t"):
        prof = prof.model_copy(update={"delimiter": src.delimiter})
    typer.echo(prof.to_yaml(), nl=False)


ingest_command.command("suggest-profile")(suggest_profile_command)


@ingest_command.command("reviews")
def reviews_command(
    tenant: Annotated[str, typer.Option(help="Tenant code")],
    all_: Annotated[bool, typer.Option("--all", help="Include resolved reviews")] = False,
) -> None:
    """List patient-match reviews (possible duplicates awaiting a decision)."""
    from xinglin.ingest.mpi import list_reviews

    with _repo(tenant) as repo:
        items = list_reviews(repo, status=None if all_ else "requested")
    for rv in items:
        typer.echo(
            f"{rv.task_id}\t{rv.status}\t{' '.join('Patient/' + c for c in rv.candidates)}\t"
            f"{rv.score}\t{','.join(rv.evidence)}\t{rv.decision or ''}"
        )
    err_console.print(f"{len(items)} 条待复核 / reviews")


@ingest_command.command("resolve")
def resolve_command(
    task_id: Annotated[str, typer.Argument(help="Task id of the review")],
    tenant: Annotated[str, typer.Option(help="Tenant code")],
    decision: Annotated[str, typer.Option(help="merge or separate")],
    keep: Annotated[str | None, typer.Option(help="Patient id to keep when merging")] = None,
) -> None:
    """Resolve a patient-match review: merge the two Patients or keep them separate."""
    from xinglin.ingest.mpi import resolve_review

    with _repo(tenant) as repo:
        rv = resolve_review(repo, task_id, decision, keep=keep)
    console.print(f"已处理 / resolved Task/{rv.task_id}: {rv.decision}")


def _repo(tenant: str):
    from xinglin.security.principal import system_principal
    from xinglin.tenancy.service import get_tenant

    store = _store()
    with store.engine.begin() as conn:
        t = get_tenant(conn, tenant)
    return store.unit_of_work(system_principal(t.id, t.code, name="ingest-review", purpose="HOPERAT"))
