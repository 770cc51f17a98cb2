"""`python -m deltaglider` runs the command-line interface."""

from deltaglider.cli import run

run()
