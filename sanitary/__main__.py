from sanitary.cli.app import app

app(prog_name="sanitary")
