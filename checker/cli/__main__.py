"""python -m rseqcheck.checker.cli"""

from rseqcheck.checker.cli.main import main

main()
