# The simulated board's Wi-Fi (simhw.py SimHardware.wifi()): it "joins" config.json's
# wifi_ssid when that is one of board.json's sim_networks, and is its own access point
# otherwise, as a board that cannot join is (firmware/pinsock/hardware/net.py). Loaded
# at start-up to say which, and for a Wi-Fi setup request (transport/wifisetup.py),
# and forgotten after each: nothing of it stays in the heap.
import asyncio
import json

# The simulator's exit code for "start me again" (restart(): a new network saved;
# tools/sim.py's RESTART_EXIT_CODE).
RESTART_EXIT_CODE = 3
BOARD_FILE = "board.json"  # the build's, in the folder the simulator runs in


class SimWifi:
    def __init__(self, hardware):
        self.ssid, hostname = hardware.wifi_conf  # config.json's, at start-up
        self.ap_ssid = "pinsock-" + hardware.unique_id_hex()[-4:]
        self.hostname = hostname or self.ap_ssid

    def scan(self):
        """[(ssid, rssi dBm, secured)]: the board's sim_networks."""
        with open(BOARD_FILE) as f:
            networks = json.load(f).get("sim_networks", [])
        return [(n["ssid"], n["rssi"], n["secure"]) for n in networks]

    def joined(self):
        ssid = self.ssid
        return ssid if ssid and any(n[0] == ssid for n in self.scan()) else ""

    def announce(self):
        joined = self.joined()
        if joined:
            print("wifi (simulated): joined %s" % joined)
        else:
            print("wifi (simulated): %s; access point %s" % (
                "cannot see %s" % self.ssid if self.ssid else "no SSID in config.json",
                self.ap_ssid))

    def describe(self):
        joined = self.joined()
        return {"mode": "station" if joined else "access point",
                "ssid": joined or self.ap_ssid, "hostname": self.hostname,
                "simulated": True}

    def restart(self, delay_ms):
        """Restart the board after delay_ms: the simulator ends with RESTART_EXIT_CODE,
        and tools/sim.py starts it again."""
        async def later():
            await asyncio.sleep_ms(delay_ms)
            print("restarting")
            raise SystemExit(RESTART_EXIT_CODE)  # through asyncio, out of main.py

        asyncio.create_task(later())
