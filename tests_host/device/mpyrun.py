# Runs device-logic test modules under the MicroPython unix port:
#     micropython mpyrun.py test_iobank [test_hub ...]
# Calls every test_* function, prints PASS/FAIL per test and a final DONE line.
import sys


def main(names):
    failed = 0
    for name in names:
        module = __import__(name)
        for attr in sorted(dir(module)):
            if not attr.startswith("test_"):
                continue
            try:
                getattr(module, attr)()
                print("PASS %s.%s" % (name, attr))
            except Exception as exc:  # report, keep going
                failed += 1
                print("FAIL %s.%s" % (name, attr))
                sys.print_exception(exc)
    print("DONE failed=%d" % failed)
    return 1 if failed else 0


sys.exit(main(sys.argv[1:]))
