# Runs first at every boot of a real board, then main.py starts the firmware.
# (The unix port does not run it; the simulator needs none of this.)
import micropython

# Room to report an exception raised in an interrupt handler (a pin IRQ), where
# nothing may allocate. Without it such an error prints only a bare message.
micropython.alloc_emergency_exception_buf(100)
