"""python -m rseqcheck.checker.cli"""

from rseqcheck.checker.cli.app import main

main()
