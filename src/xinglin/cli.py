"""The `xinglin` command."""

from __future__ import annotations

import sys
from typing import Annotated

import typer
from rich.console import Console

from xinglin.core.config import get_settings
from xinglin.core.errors import XinglinError

app = typer.Typer(no_args_is_help=True, add_completion=False, help="Xinglin 杏林 — smart-hospital backend")
db_app = typer.Typer(no_args_is_help=True, help="Database schema")
tenant_app = typer.Typer(no_args_is_help=True, help="Tenants (hospitals or groups)")
user_app = typer.Typer(no_args_is_help=True, help="Users and integration clients")
audit_app = typer.Typer(no_args_is_help=True, help="The audit chain")
share_app = typer.Typer(no_args_is_help=True, help="De-identified research data sets")
codes_app = typer.Typer(no_args_is_help=True, help="Code sets a hospital supplies (ICD-10 ...)")
app.add_typer(db_app, name="db")
app.add_typer(tenant_app, name="tenant")
app.add_typer(user_app, name="user")
app.add_typer(audit_app, name="audit")
app.add_typer(share_app, name="share")
app.add_typer(codes_app, name="codes")

console = Console(soft_wrap=True)
err_console = Console(stderr=True, soft_wrap=True)


def _engine():
    from xinglin.store.db import make_engine

    return make_engine(get_settings().database_url)


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Create or upgrade the schema to the latest revision (safe to run again)."""
    from xinglin.store.migrate import upgrade

    upgrade(_engine(), get_settings())
    console.print("[green]数据库已是最新 / database schema is up to date[/green]")


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port")] = 8000,
    workers: Annotated[int, typer.Option(help="Worker processes")] = 1,
) -> None:
    """Serve the FHIR API, the portal and the other HTTP interfaces."""
    import uvicorn

    uvicorn.run(
        "xinglin.app:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level="warning",
        access_log=False,
    )


@tenant_app.command("add")
def tenant_add(
    code: Annotated[str, typer.Argument(help="Short code, e.g. demo")],
    name: Annotated[str, typer.Option(help="Name in Chinese")],
    name_en: Annotated[str, typer.Option(help="Name in English")] = "",
    logo_url: Annotated[str | None, typer.Option(help="Logo URL")] = None,
    primary_color: Annotated[str, typer.Option(help="#RRGGBB")] = "#0f766e",
    accent_color: Annotated[str, typer.Option(help="#RRGGBB")] = "#b45309",
    locale: Annotated[str, typer.Option(help="Default language")] = "zh-CN",
    time_zone: Annotated[str, typer.Option(help="IANA time zone")] = "Asia/Shanghai",
) -> None:
    """Add a tenant."""
    from xinglin.tenancy import service

    with _engine().begin() as conn:
        t = service.create_tenant(
            conn,
            code,
            name,
            name_en=name_en,
            logo_url=logo_url,
            primary_color=primary_color,
            accent_color=accent_color,
            locale=locale,
            time_zone=time_zone,
        )
    console.print(f"租户已创建 / tenant created: {t.code} ({t.name_zh})")


@tenant_app.command("set")
def tenant_set(
    code: Annotated[str, typer.Argument(help="Tenant code")],
    name: Annotated[str | None, typer.Option(help="Name in Chinese")] = None,
    name_en: Annotated[str | None, typer.Option(help="Name in English")] = None,
    logo_url: Annotated[str | None, typer.Option(help="Logo URL")] = None,
    primary_color: Annotated[str | None, typer.Option(help="#RRGGBB")] = None,
    accent_color: Annotated[str | None, typer.Option(help="#RRGGBB")] = None,
    locale: Annotated[str | None, typer.Option(help="zh-CN, zh-TW or en")] = None,
    time_zone: Annotated[str | None, typer.Option(help="IANA time zone")] = None,
) -> None:
    """Change a tenant's branding."""
    from xinglin.tenancy import service

    changes = {
        "name_zh": name,
        "name_en": name_en,
        "logo_url": logo_url,
        "primary_color": primary_color,
        "accent_color": accent_color,
        "locale": locale,
        "time_zone": time_zone,
    }
    with _engine().begin() as conn:
        t = service.update_branding(conn, code, changes)
    console.print(f"租户已更新 / tenant updated: {t.code} ({t.name_zh}, {t.primary_color}, {t.locale}, {t.time_zone})")


@tenant_app.command("list")
def tenant_list() -> None:
    """List tenants."""
    from xinglin.tenancy import service

    with _engine().begin() as conn:
        for t in service.list_tenants(conn):
            typer.echo(f"{t.code}\t{t.name_zh}\t{t.name_en}\t{t.locale}\t{t.time_zone}")


@user_app.command("add")
def user_add(
    tenant: Annotated[str, typer.Option(help="Tenant code")],
    username: Annotated[str, typer.Option(help="Sign-in name (client id for integration clients)")],
    password: Annotated[str, typer.Option(help="Password (client secret for integration clients)")],
    role: Annotated[
        str, typer.Option(help="patient|physician|nurse|pharmacist|registrar|admin|researcher|integration")
    ],
    patient_id: Annotated[str | None, typer.Option(help="Patient id, for role patient")] = None,
    practitioner_id: Annotated[str | None, typer.Option(help="Practitioner id, for clinical staff")] = None,
    display_name: Annotated[str, typer.Option(help="Name shown in the portal")] = "",
    scopes: Annotated[str | None, typer.Option(help="Scopes for integration clients, e.g. 'system/*.read'")] = None,
) -> None:
    """Add a user or an integration client."""
    from xinglin.tenancy import service

    with _engine().begin() as conn:
        service.create_user(
            conn,
            tenant,
            username,
            password,
            role,
            patient_id=patient_id,
            practitioner_id=practitioner_id,
            display_name=display_name,
            scopes=scopes,
        )
    console.print(f"用户已创建 / user created: {username} ({role})")


@audit_app.command("verify")
def audit_verify() -> None:
    """Check the audit chain; exits non-zero naming the first broken record."""
    from xinglin.store import audit

    with _engine().connect() as conn:
        report = audit.verify(conn)
    if report.intact:
        console.print(f"审计链完整 / audit chain intact: {report.records} records in {report.lanes} lanes")
        return
    for problem in report.problems:
        err_console.print(f"[red]审计链已被破坏 / audit chain broken: {problem}[/red]")
    raise typer.Exit(1)


def _principal(tenant: str, username: str):
    """A user of a tenant acting from the command line (the operator vouches for them; audited as them)."""
    from xinglin.tenancy import service

    with _engine().connect() as conn:
        return service.principal_for(conn, tenant, username, client_address="cli", purpose="HRESCH")


@share_app.command("export")
def share_export(
    tenant: Annotated[str, typer.Option(help="Tenant code")],
    as_user: Annotated[str, typer.Option("--as", help="The researcher (username) the export is made for")],
    cohort: Annotated[str, typer.Option(help="FHIR search, e.g. 'Condition?code=I10'")],
    fields: Annotated[
        str, typer.Option(help="Comma-separated: age_band,sex,region,first_visit,visits,diagnoses,lab:<LOINC>")
    ],
    k: Annotated[int, typer.Option(help="k of k-anonymity")] = 5,
    out: Annotated[str | None, typer.Option(help="Output folder (default XINGLIN_EXPORT_DIR)")] = None,
    destination: Annotated[str | None, typer.Option(help="Registered destination (default: domestic)")] = None,
    reproduce: Annotated[str | None, typer.Option(help="Re-run a recorded export by its id")] = None,
) -> None:
    """Export a de-identified, k-anonymous research data set (CSV, Parquet, data dictionary, report)."""
    from pathlib import Path

    from xinglin.share.service import export_dataset, reproduce_export
    from xinglin.store.repository import Store

    settings = get_settings()
    store = Store(_engine(), settings)
    principal = _principal(tenant, as_user)
    out_dir = Path(out or settings.export_dir)
    if reproduce:
        record = reproduce_export(store, principal, reproduce, out_dir=out_dir)
    else:
        record = export_dataset(
            store,
            principal,
            cohort,
            [f.strip() for f in fields.split(",") if f.strip()],
            k=k,
            out_dir=out_dir,
            destination=destination,
        )
    a = record.anonymity
    console.print(
        f"导出 / export {record.export_id}: {record.rows} 行 rows "
        f"(队列 cohort {record.patients_in_cohort}, 同意 consented {record.patients_with_consent}, "
        f"隐匿 suppressed {a.rows_suppressed}); k={record.k}; 泛化 generalised {a.levels}"
    )
    console.print(f"文件 / files: {record.directory}")


@app.command("demo-data")
def demo_data(
    tenant: Annotated[str, typer.Option(help="Tenant code (created when missing)")] = "demo",
    patients: Annotated[int, typer.Option(help="Number of synthetic patients")] = 500,
    seed: Annotated[int, typer.Option(help="Random seed")] = 20261125,
) -> None:
    """Load a demo hospital: departments, practitioners with schedules, synthetic patients and their records."""
    from xinglin.demo.loader import load_demo

    load_demo(_engine(), get_settings(), tenant, patients=patients, seed=seed, console=console)


def _register_engines() -> None:
    # Engines with their own command modules; imported here so `xinglin --help` lists them.
    from xinglin.ingest.cli import ingest_command
    from xinglin.ingest.coding.cli import code_dx_command, codes_load_command
    from xinglin.privacy.deid.cli import deid_command
    from xinglin.triage.cli import triage_command

    app.add_typer(ingest_command, name="ingest")
    app.command("code-dx")(code_dx_command)
    codes_app.command("load")(codes_load_command)
    app.command("deid")(deid_command)
    app.command("triage")(triage_command)


_register_engines()


def main() -> None:
    try:
        app()
    except XinglinError as exc:
        err_console.print(
            f"[red]错误：{exc.zh}[/red]\n[red]Error: {exc.en}[/red]"
            + (f"\n(field: {exc.element})" if exc.element else "")
        )
        sys.exit(2)


if __name__ == "__main__":
    main()
