"""Runs the device-logic tests in tests_host/device/ under the MicroPython unix port.

pytest also runs the same files under CPython (they are ordinary test modules); this
file runs each module once more on the unix port against the compiled build
(build/UNIX_SIM, .mpy), and checks that every test function in it reported PASS.
Then once more on the 32-bit unix port built from MicroPython's source (tools/unix32.py:
31-bit small ints, 32-bit objects, as on the chips), where it can be built
(tests_host/test_fidelity.py says when). And on MicroPython's qemu port, a Cortex-M3
(tools/qemu_device.py: Thumb-2, 31-bit small ints, single-precision floats), where its
toolchain is installed (optional: gcc-arm-none-eabi, libnewlib-arm-none-eabi,
qemu-system-arm; about 850 MB).
"""

import ast
import subprocess
from pathlib import Path

import pytest

import qemu_device
import unix32

DEVICE_TESTS = Path(__file__).resolve().parent / "device"
MODULES = sorted(p.stem for p in DEVICE_TESTS.glob("test_*.py"))


def declared_tests(module):
    tree = ast.parse((DEVICE_TESTS / (module + ".py")).read_text())
    return sorted(n.name for n in tree.body
                  if isinstance(n, ast.FunctionDef) and n.name.startswith("test_"))


@pytest.fixture(params=["unix", "unix32"])
def port(request, micropython):
    if request.param == "unix":
        return micropython
    from test_fidelity import need_unix32

    need_unix32()
    return str(unix32.build(frozen=False))


@pytest.mark.parametrize("module", MODULES)
def test_module_passes_on_unix_port(module, sim_build, port, tmp_path):
    micropython = port
    env = {"MICROPYPATH": ".frozen:%s:%s:%s" % (DEVICE_TESTS, sim_build, sim_build / "lib"),
           "PINSOCK_TEST_TMP": str(tmp_path)}
    proc = subprocess.run([micropython, str(DEVICE_TESTS / "mpyrun.py"), module],
                          capture_output=True, text=True, env=env, timeout=120,
                          cwd=tmp_path)
    out = proc.stdout + proc.stderr
    passed = sorted(line.split(".", 1)[1] for line in out.splitlines()
                    if line.startswith("PASS "))
    assert proc.returncode == 0, out
    assert passed == declared_tests(module), out


@pytest.fixture(scope="session")
def qemu_image():
    reason = qemu_device.missing()
    if reason:
        pytest.skip(reason)
    return qemu_device.image()


@pytest.mark.parametrize("module", MODULES)
def test_module_passes_on_qemu_cortex_m3(module, qemu_image):
    if module in qemu_device.NOT_ON_QEMU:
        pytest.skip(qemu_device.NOT_ON_QEMU[module])
    code, out = qemu_device.run_module(qemu_image, module)
    passed = sorted(line.split(".", 1)[1].strip() for line in out.splitlines()
                    if line.startswith("PASS "))
    assert code == 0, out
    assert passed == declared_tests(module), out
