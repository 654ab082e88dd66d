# pinsock: MicroPython firmware that pushes DIP switch and GPIO changes over WebSocket.
VERSION = "0.1.0"
