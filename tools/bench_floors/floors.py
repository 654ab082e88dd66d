# Floors for tools/bench.py: the least a MicroPython server can do for each thing the
# firmware does, so every figure has something measured on the same machine, in the
# same run, to be compared with. Runs on the unix port, compiled to .mpy like the
# firmware, with the firmware build's microdot (build/UNIX_SIM/lib):
#
#   micropython -m floors <tcp port> <ws port> <http port>
#
#   tcp   bare asyncio TCP line echo: each line comes back as it is
#   ws    bare microdot WebSocket echo (GET /ws): each text message comes back
#   http  microdot GET /state: the switch state as JSON, what a polling page reads
#
# Prints "floors ready" when all three listen on 127.0.0.1.
import asyncio
import sys

from microdot import Microdot
from microdot.websocket import with_websocket

# The same JSON the firmware's switch report carries, so byte counts compare.
STATE = ('{"dipSwitches":{"dip1":"Off","dip2":"Off","dip3":"Off","dip4":"Off",'
         '"dip5":"Off","dip6":"Off","dip7":"Off","dip8":"Off"},"seq":0}')


async def tcp_echo(reader, writer):
    try:
        while True:
            line = await reader.readline()
            if not line:
                break
            await writer.awrite(line)
    except Exception:
        pass
    await writer.aclose()


def make_app():
    app = Microdot()

    @app.get("/ws")
    @with_websocket
    async def ws_echo(request, ws):
        while True:
            await ws.send(await ws.receive())

    @app.get("/state")
    async def state(request):
        return STATE, 200, {"Content-Type": "application/json"}

    return app


async def serve(app, port):
    async def handle(reader, writer):
        try:
            await app.handle_request(reader, writer)
        except Exception:
            pass

    return await asyncio.start_server(handle, "127.0.0.1", port)


async def run(tcp_port, ws_port, http_port):
    await asyncio.start_server(tcp_echo, "127.0.0.1", tcp_port)
    app = make_app()
    await serve(app, ws_port)
    srv = await serve(app, http_port)
    print("floors ready")
    await srv.wait_closed()


def main():
    tcp_port, ws_port, http_port = (int(a) for a in sys.argv[1:4])
    asyncio.run(run(tcp_port, ws_port, http_port))


main()
