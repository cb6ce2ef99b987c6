"""Commands of the service and of encryption.

``serve``, ``user``, ``keygen``, ``rotate-key``, ``export``: registered on the
``migraine-twin`` application by :mod:`migraine_bayes.cli`.
"""


import os
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer

from migraine_bayes.store import crypto


def register(app: typer.Typer, handled: Callable, say: Callable[[str], None]) -> None:
    """Add the commands to ``app``; ``handled`` maps errors to exit codes, ``say`` to stderr."""
    user_app = typer.Typer(help="Users of the twin service and their tokens.",
                           no_args_is_help=True)
    app.add_typer(user_app, name="user")
    Registry = Annotated[Path, typer.Option("--registry", help="The registry: a folder of "
                                                               "twin directories.")]

    @app.command()
    @handled
    def serve(
        registry: Registry,
        host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
        port: Annotated[int, typer.Option(min=1, max=65535)] = 8000,
        workers: Annotated[int, typer.Option(min=1, help="Worker processes.")] = 1,
        max_failures: Annotated[int, typer.Option(min=1, help="Failed authentications of "
                                                  "one token id (a malformed token: of one "
                                                  "address) within a minute before it is "
                                                  "refused for a minute (429).")] = 10,
        trusted_proxy: Annotated[list[str] | None, typer.Option(
            help="Address of a reverse proxy whose X-Forwarded-For names the client "
                 "(repeat for several).")] = None,
    ) -> None:
        """Serve the registry's twins over HTTP (FastAPI, uvicorn); every request audited.

        Bearer tokens come from `migraine-twin user add`; the OpenAPI schema is at
        /openapi.json.
        """
        import uvicorn

        from migraine_bayes.service.app import REGISTRY_ENV, TRUSTED_ENV
        from migraine_bayes.service.twins import TwinRegistry

        n = len(TwinRegistry(registry).twin_dirs())
        os.environ[REGISTRY_ENV] = str(registry.resolve())
        os.environ["MIGRAINE_BAYES_MAX_FAILURES"] = str(max_failures)
        if trusted_proxy:
            os.environ[TRUSTED_ENV] = ",".join(trusted_proxy)
        key = crypto.active_key()
        if key is not None:  # workers read the key from the environment
            import base64

            os.environ[crypto.KEY_ENV] = base64.urlsafe_b64encode(key).decode("ascii")
        say(f"serving {n} twin(s) of {registry} on http://{host}:{port} "
            f"({workers} worker(s)); OpenAPI schema at /openapi.json")
        uvicorn.run("migraine_bayes.service.app:app_from_env", factory=True, host=host,
                    port=port, workers=workers, log_level="warning", access_log=False)

    @user_app.command("add")
    @handled
    def user_add(
        name: Annotated[str, typer.Argument(help="User name (letters, digits, _.@-).")],
        role: Annotated[str, typer.Option(help="clinician, researcher or admin.")],
        registry: Registry,
        patients: Annotated[str | None, typer.Option(help="A clinician's patients, e.g. "
                                                          "P1,P2.")] = None,
        days: Annotated[int, typer.Option(min=1, help="Days until the token expires.")] = 90,
        replace: Annotated[bool, typer.Option("--replace", help="Issue a new token to an "
                                                                "existing user.")] = False,
    ) -> None:
        """Add a user and print their token — once: it is stored only as an Argon2 hash."""
        from migraine_bayes.service.users import UserStore

        ids = [p.strip() for p in patients.split(",") if p.strip()] if patients else []
        token = UserStore(registry).add(name, role, ids, days, replace=replace)
        typer.echo(token)
        say(f"user {name} ({role}) added; the token above is shown only now and expires in "
            f"{days} days")

    @user_app.command("revoke")
    @handled
    def user_revoke(name: Annotated[str, typer.Argument()], registry: Registry) -> None:
        """Revoke a user's token (refused from the next request on)."""
        from migraine_bayes.service.users import UserStore

        UserStore(registry).revoke(name)
        typer.echo(f"revoked: {name}")

    @user_app.command("list")
    @handled
    def user_list(registry: Registry) -> None:
        """The registry's users (no tokens)."""
        import pandas as pd

        from migraine_bayes.service.users import UserStore

        typer.echo(pd.DataFrame(UserStore(registry).list()).to_string(index=False))

    @app.command()
    @handled
    def keygen(out: Annotated[Path, typer.Argument(help="Key file to write (0600; must "
                                                        "not exist).")]) -> None:
        """Write a new random key (urlsafe base64 of 32 bytes, the Fernet format)."""
        if out.exists():
            raise ValueError(f"{out} exists; a key file is never overwritten")
        fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="ascii") as fh:
            fh.write(crypto.new_key() + "\n")
        typer.echo(f"key written to {out} (keep it apart from the data it protects)")

    @app.command("rotate-key")
    @handled
    def rotate_key(
        paths: Annotated[list[Path], typer.Argument(help="Twin directories, or registries "
                                                         "(every twin inside).")],
        new_key_file: Annotated[Path, typer.Option("--new-key-file", help="The new key.")],
    ) -> None:
        """Re-encrypt twins (files, kept versions, audit trails) under a new key.

        The current key (MIGRAINE_BAYES_KEY or --key-file) opens them; twins not yet
        encrypted are encrypted. Each twin is verified first and rewritten atomically.
        """
        from migraine_bayes.service.rotation import rotate

        new = crypto.read_key_file(new_key_file)
        for result in rotate(paths, crypto.active_key(), new):
            typer.echo(f"{result['path']}: {result['files']} file(s) and "
                       f"{result['audit_entries']} audit entries now under key "
                       f"{result['key_id']}")

    @app.command()
    @handled
    def export(
        cohort: Annotated[Path, typer.Argument(help="Cohort folder.")],
        out: Annotated[Path, typer.Argument(help="Folder to write (new or empty).")],
        pseudonymise: Annotated[bool, typer.Option("--pseudonymise", help="Keyed-hash ids, "
                                                   "days moved back by whole weeks per "
                                                   "patient, k-anonymous (k = 5) "
                                                   "quasi-identifiers, no times of day or "
                                                   "free text; the mapping sealed apart "
                                                   "(needs a key).")] = False,
        mapping: Annotated[Path | None, typer.Option(help="Where the sealed mapping goes "
                                                          "(default: OUT.mapping.sealed).")
                           ] = None,
        force: Annotated[bool, typer.Option("--force")] = False,
    ) -> None:
        """Export a cohort: pseudonymised for research, or sealed with the key."""
        from migraine_bayes.cohort.export import export as run

        res = run(cohort, out, pseudonymised=pseudonymise, mapping=mapping, force=force)
        what = ("pseudonymised" if pseudonymise else
                "encrypted" if res["sealed"] else "not encrypted (no key)")
        typer.echo(f"{res['patients']} patients exported to {res['out']} ({what})"
                   + (f"; mapping sealed to {res['mapping']}" if res["mapping"] else ""))
        for notice in res.get("notices", []):
            typer.echo(f"  {notice}")
