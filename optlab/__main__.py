import sys

from optlab.interrupts import session

if __name__ == "__main__":
    try:
        with session():  # Ctrl-C and SIGTERM are recorded from the first moment, never a traceback
            from optlab.app.cli import main

            main()
    except KeyboardInterrupt:  # (while the modules were imported)
        print("optlab: interrupted", file=sys.stderr)
        sys.exit(130)
