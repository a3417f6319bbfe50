"""The `sanitary` command line: one Typer app, its commands in modules by what they work on. Input errors become one
line on stderr and a non-zero exit, never a traceback (`common.friendly`)."""

from __future__ import annotations

import typer

from sanitary.cli import footage, models, officials

app = typer.Typer(
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    help="Anonymous occupancy and mask-wearing aggregates from video; only aggregates are ever stored.",
)
app.command()(footage.run)
app.command()(footage.count)
app.command()(officials.audit)
app.command("eval-mask")(models.eval_mask)
app.command("train-mask")(models.train_mask)
app.command("train-crowd")(models.train_crowd)
app.command("calibrate")(footage.calibrate_command)
app.command()(officials.query)
app.command()(officials.report)
app.command()(officials.merge)
app.command()(footage.live)
app.command("export")(officials.export_command)
app.command("import")(officials.import_command)
app.add_typer(officials.signage_app, name="signage")
app.add_typer(officials.alerts_app, name="alerts")
