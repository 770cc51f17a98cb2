"""The `deltaglider` command: the console script and `python -m deltaglider`.

Owns only how the process starts: Python's cyclic garbage collector is paused while the CLI
and botocore load (hundreds of thousands of long-lived objects, no garbage: the collections
cost ~50 ms per process) and resumed by the CLI once its S3 client exists. Everything else is
`cli.run`'s."""

import gc


def console() -> None:
    gc.disable()
    from deltaglider.cli import run

    run(collector_paused=True)


if __name__ == "__main__":
    console()
