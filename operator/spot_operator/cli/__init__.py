"""spotctl: the command line for people (typer + rich)."""
