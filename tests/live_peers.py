"""Real protocol stacks for the live-capture tests, one role per process (run inside a network namespace).

    python live_peers.py modbus-server HOST PORT LOG
    python live_peers.py modbus-client HOST PORT SOURCE_IP LOG normal|rogue
    python live_peers.py dnp3-outstation HOST PORT LOG
    python live_peers.py dnp3-master HOST PORT LOG

Each writes its own action log (JSON lines): what the stack itself sent, received and applied, taken from
the stack's callbacks (pymodbus ``trace_pdu``, opendnp3 command/SOE handlers) — the ground truth the
sensor's events are compared with. Servers print ``ready`` once listening and run until SIGTERM.
"""

from __future__ import annotations

import json
import signal
import sys
import threading
import time
from typing import Any


class ActionLog:
    def __init__(self, path: str) -> None:
        self.file = open(path, "a", buffering=1)  # noqa: SIM115 - closed at exit
        self.lock = threading.Lock()

    def write(self, **record: Any) -> None:
        with self.lock:
            self.file.write(json.dumps(record) + "\n")


def _pdu_record(sending: bool, pdu: Any) -> dict[str, Any]:
    fc = pdu.function_code
    return {
        "sending": sending,
        "fc": fc & 0x7F,
        "exception": bool(fc & 0x80),
        "exception_code": getattr(pdu, "exception_code", 0),
        "tid": pdu.transaction_id,
        "unit": pdu.dev_id,
        "address": pdu.address,
        "count": pdu.count,
        "registers": list(pdu.registers or []),
        "bits": [bool(b) for b in (pdu.bits or [])],
    }


# -- Modbus (pymodbus) --------------------------------------------------------------------------------


def modbus_server(host: str, port: int, log_path: str) -> None:
    import asyncio

    from pymodbus.datastore import ModbusDeviceContext, ModbusSequentialDataBlock, ModbusServerContext
    from pymodbus.server import ModbusTcpServer

    log = ActionLog(log_path)

    def trace(sending: bool, pdu: Any) -> Any:
        log.write(role="modbus-server", **_pdu_record(sending, pdu))
        return pdu

    device = ModbusDeviceContext(
        di=ModbusSequentialDataBlock(1, [i % 2 for i in range(100)]),
        co=ModbusSequentialDataBlock(1, [0] * 100),
        hr=ModbusSequentialDataBlock(1, [100 + i for i in range(100)]),
        ir=ModbusSequentialDataBlock(1, [500 + i for i in range(100)]),
    )
    context = ModbusServerContext(devices=device, single=True)

    async def serve() -> None:
        server = ModbusTcpServer(context, address=(host, port), trace_pdu=trace)
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGTERM, lambda: asyncio.ensure_future(server.shutdown()))
        task = asyncio.create_task(server.serve_forever())
        for _ in range(500):  # listening once a connection succeeds
            await asyncio.sleep(0.01)
            try:
                _, writer = await asyncio.open_connection(host, port)
            except OSError:
                continue
            writer.close()
            break
        print("ready", flush=True)
        await task

    asyncio.run(serve())


MODBUS_SCRIPTS: dict[str, list[tuple[str, tuple[Any, ...], dict[str, Any]]]] = {
    "normal": [
        ("read_holding_registers", (0,), {"count": 10}),
        ("write_register", (5, 1234), {}),
        ("write_registers", (10, [1, 2, 3]), {}),
        ("read_holding_registers", (0,), {"count": 16}),
        ("read_coils", (0,), {"count": 8}),
        ("write_coil", (3, True), {}),
        ("write_coils", (8, [True, False, True]), {}),
        ("read_input_registers", (2,), {"count": 4}),
        ("read_discrete_inputs", (0,), {"count": 8}),
        ("read_holding_registers", (200,), {"count": 2}),  # beyond the map: an exception response
    ],
    "rogue": [
        ("write_register", (7, 999), {}),
        ("write_coil", (1, True), {}),
    ],
}


def modbus_client(host: str, port: int, source: str, log_path: str, script: str) -> None:
    from pymodbus.client import ModbusTcpClient

    log = ActionLog(log_path)

    def trace(sending: bool, pdu: Any) -> Any:
        log.write(role=f"modbus-client-{script}", source=source, **_pdu_record(sending, pdu))
        return pdu

    client = ModbusTcpClient(
        host, port=port, source_address=(source, 0), trace_pdu=trace, timeout=3, retries=1
    )
    if not client.connect():
        raise SystemExit(f"cannot connect to {host}:{port} from {source}")
    for name, args, kwargs in MODBUS_SCRIPTS[script]:
        getattr(client, name)(*args, **kwargs)
        time.sleep(0.02)
    client.close()


# -- DNP3 (opendnp3 via yadnp3) -----------------------------------------------------------------------


def dnp3_outstation(host: str, port: int, log_path: str) -> None:
    import opendnp3 as dnp3

    log = ActionLog(log_path)

    class Commands(dnp3.ICommandHandler):
        def Begin(self) -> None:
            pass

        def End(self) -> None:
            pass

        def Select(self, command: Any, index: int) -> Any:
            log.write(role="dnp3-outstation", action="select", **_command(command, index))
            return dnp3.CommandStatus.SUCCESS

        def Operate(self, command: Any, index: int, handler: Any, op_type: Any) -> Any:
            log.write(role="dnp3-outstation", action="operate", op=str(op_type), **_command(command, index))
            return dnp3.CommandStatus.SUCCESS

    class App(dnp3.IOutstationApplication):
        def SupportsWriteAbsoluteTime(self) -> bool:
            return False

        def WriteAbsoluteTime(self, timestamp: Any) -> bool:
            return False

        def SupportsAssignClass(self) -> bool:
            return False

        def GetApplicationIIN(self) -> Any:
            return dnp3.ApplicationIIN()

        def ColdRestartSupport(self) -> Any:
            return dnp3.RestartMode.UNSUPPORTED

        def WarmRestartSupport(self) -> Any:
            return dnp3.RestartMode.UNSUPPORTED

        def ColdRestart(self) -> int:
            return 0

        def WarmRestart(self) -> int:
            return 0

        def Now(self) -> Any:
            return dnp3.DNPTime(int(time.time() * 1000))

    manager = dnp3.DNP3Manager(1)
    channel = manager.AddTCPServer(
        "server", dnp3.levels.NOTHING, dnp3.ServerAcceptMode.CloseExisting, dnp3.IPEndpoint(host, port), None
    )
    config = dnp3.OutstationStackConfig(dnp3.DatabaseConfig(10))
    config.outstation.params.allowUnsolicited = False
    config.link.LocalAddr = 10
    config.link.RemoteAddr = 1
    commands, app = Commands(), App()
    outstation = channel.AddOutstation("outstation", commands, app, config)
    outstation.Enable()
    builder = dnp3.UpdateBuilder()
    updates = [("Analog", 0, 42.0), ("Analog", 4, 1500.0), ("Binary", 3, True), ("Counter", 5, 999)]
    for kind, index, value in updates:
        builder.Update(getattr(dnp3, kind)(value), index)
        log.write(role="dnp3-outstation", action="update", kind=kind, index=index, value=value)
    outstation.Apply(builder.Build())
    print("ready", flush=True)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    done.wait()
    manager.Shutdown()


def _command(command: Any, index: int) -> dict[str, Any]:
    import opendnp3 as dnp3

    if isinstance(command, dnp3.ControlRelayOutputBlock):
        return {"index": index, "type": "crob", "op_type": str(command.opType)}
    return {"index": index, "type": type(command).__name__, "value": command.value}


def dnp3_master(host: str, port: int, log_path: str) -> None:
    import opendnp3 as dnp3

    log = ActionLog(log_path)

    class Values(dnp3.ISOEHandler):
        def BeginFragment(self, info: Any) -> None:
            pass

        def EndFragment(self, info: Any) -> None:
            pass

        def Process(self, info: Any, values: Any) -> None:
            for item in values:
                kind = type(item.value).__name__
                if kind in ("Binary", "Analog", "Counter", "BinaryOutputStatus", "AnalogOutputStatus"):
                    log.write(
                        role="dnp3-master",
                        action="value",
                        kind=kind,
                        index=item.index,
                        value=item.value.value,
                    )

    class App(dnp3.IMasterApplication):
        def OnReceiveIIN(self, iin: Any) -> None:
            pass

        def OnTaskStart(self, task_type: Any, task_id: Any) -> None:
            pass

        def OnTaskComplete(self, info: Any) -> None:
            pass

        def OnOpen(self) -> None:
            pass

        def OnClose(self) -> None:
            pass

        def AssignClassDuringStartup(self) -> bool:
            return False

        def Now(self) -> Any:
            return dnp3.UTCTimestamp(int(time.time() * 1000))

    manager = dnp3.DNP3Manager(1)
    channel = manager.AddTCPClient(
        "client",
        dnp3.levels.NOTHING,
        dnp3.ChannelRetry.Default(),
        [dnp3.IPEndpoint(host, port)],
        "0.0.0.0",
        None,
    )
    config = dnp3.MasterStackConfig()
    config.link.LocalAddr = 1
    config.link.RemoteAddr = 10
    soe, app = Values(), App()
    master = channel.AddMaster("master", soe, app, config)
    master.Enable()
    time.sleep(1.0)  # startup: disable unsolicited, integrity poll

    def run(name: str, call: Any, command: Any, index: int) -> None:
        done = threading.Event()
        result: list[str] = []

        def on_result(res: Any) -> None:
            result.append(str(res.summary))
            done.set()

        log.write(role="dnp3-master", action=name, **_command(command, index))
        call(command, index, on_result)
        done.wait(5)
        log.write(
            role="dnp3-master", action=f"{name}_result", index=index, result=result[0] if result else None
        )

    run("direct_operate", master.DirectOperate, dnp3.ControlRelayOutputBlock(dnp3.OperationType.LATCH_ON), 2)
    run(
        "select_and_operate",
        master.SelectAndOperate,
        dnp3.ControlRelayOutputBlock(dnp3.OperationType.LATCH_OFF),
        3,
    )
    run("direct_operate", master.DirectOperate, dnp3.AnalogOutputInt32(12345), 1)
    master.ScanClasses(dnp3.ClassField.AllClasses(), soe)
    time.sleep(0.5)
    master.Disable()
    time.sleep(0.2)
    manager.Shutdown()


def main(argv: list[str]) -> None:
    role, host, port = argv[0], argv[1], int(argv[2])
    if role == "modbus-server":
        modbus_server(host, port, argv[3])
    elif role == "modbus-client":
        modbus_client(host, port, argv[3], argv[4], argv[5])
    elif role == "dnp3-outstation":
        dnp3_outstation(host, port, argv[3])
    elif role == "dnp3-master":
        dnp3_master(host, port, argv[3])
    else:
        raise SystemExit(f"unknown role {role}")


if __name__ == "__main__":
    main(sys.argv[1:])
