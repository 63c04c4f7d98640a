"""Command line: placeholder until the foundation lands."""


def main(argv=None) -> int:
    return 0
