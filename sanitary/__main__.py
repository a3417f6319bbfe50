from sanitary.cli import app

app(prog_name="sanitary")
