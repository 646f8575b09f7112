"""The soak's sender (bench/soak.py): events at a fixed rate over keep-alive HTTP/1.1
connections, each retried with the same id until it is answered 2xx (as a Knative Broker does),
and the counters the sampler reads each second."""

import asyncio
import random
import time
from collections import Counter

EVENT_TYPE = "dev.flowbridge.soak"


PENDING, OK, GAVE_UP = 1, 2, 3


class Second:
    """The sender's counters for the current sampling second (reset by the sampler)."""

    def __init__(self):
        self.sent = self.attempts = self.ok = self.non2xx = self.transport = 0
        self.latencies = []


async def read_response(reader):
    """One HTTP/1.1 response: (status, headers, keep_alive); the body is read and dropped."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    headers = {}
    for line in lines[1:]:
        if ":" in line:
            k, v = line.split(":", 1)
            headers[k.strip().lower()] = v.strip()
    if headers.get("transfer-encoding", "").lower() == "chunked":
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            if size == 0:
                while await reader.readuntil(b"\r\n") != b"\r\n":
                    pass
                break
            await reader.readexactly(size + 2)
    else:
        n = int(headers.get("content-length", "0"))
        if n:
            await reader.readexactly(n)
    return status, headers, headers.get("connection", "").lower() != "close"


class Sender:
    def __init__(self, port, rate, total, connections, prefix, give_up_s, attempt_timeout_s):
        self.port, self.rate, self.total = port, rate, total
        self.connections, self.prefix = connections, prefix
        self.give_up_s, self.attempt_timeout_s = give_up_s, attempt_timeout_s
        body = b'{"text":"soak","n":1}'
        self.head = (
            f"POST / HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
            f"ce-specversion: 1.0\r\nce-type: {EVENT_TYPE}\r\nce-source: /bench/soak\r\n"
            f"Content-Length: {len(body)}\r\nce-id: "
        ).encode()
        self.body = body
        self.outcome = bytearray(total)  # 0: not sent yet, PENDING, OK, GAVE_UP
        self.next = 0
        self.t0 = None
        self.second = Second()
        self.status = Counter()  # every attempt's HTTP status
        self.transport = Counter()  # every attempt that got no HTTP answer, by kind
        self.first_transport_error = None
        self.retries = 0
        self.retried_events = 0
        self.max_attempts = 0
        self.lag_s = 0.0  # how late the latest send started
        self.max_lag_s = 0.0
        self.sent_by_end = None  # events sent when the planned duration was over
        self.in_flight = 0
        self.finished = False  # every event sent and answered (or given up)

    async def run(self, t0):
        self.t0 = t0
        # Connections stay open until every worker is done (a worker that runs out of events
        # early must not lower flowbridge's open fds before the planned end).
        self.open_conns = set()
        workers = [asyncio.create_task(self.worker()) for _ in range(self.connections)]
        try:
            await asyncio.gather(*workers)
            self.finished = True
        finally:
            for w in workers:
                w.cancel()
            await asyncio.gather(*workers, return_exceptions=True)
            for conn in self.open_conns:
                conn[1].close()

    async def worker(self):
        conn = None
        loop = asyncio.get_running_loop()
        try:
            while self.next < self.total:
                k = self.next
                self.next += 1
                delay = self.t0 + k / self.rate - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
                    self.lag_s = 0.0
                else:
                    self.lag_s = -delay
                    self.max_lag_s = max(self.max_lag_s, self.lag_s)
                if conn is not None:
                    self.open_conns.discard(conn)
                conn = await self.deliver(k, conn)
                if conn is not None:
                    self.open_conns.add(conn)
        except asyncio.CancelledError:
            if conn is not None:
                conn[1].close()
            raise

    async def deliver(self, k, conn):
        """Send event k until it gets a 2xx (or give up); returns the connection to reuse."""
        req = self.head + f"{self.prefix}-{k}".encode() + b"\r\n\r\n" + self.body
        first = time.monotonic()
        self.outcome[k] = PENDING
        self.in_flight += 1
        self.second.sent += 1
        attempt = 0
        try:
            while True:
                attempt += 1
                self.max_attempts = max(self.max_attempts, attempt)
                self.second.attempts += 1
                status, headers = None, {}
                started = time.monotonic()
                try:
                    if conn is None:
                        conn = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", self.port), 5)

                    async def exchange(reader, writer):
                        writer.write(req)
                        await writer.drain()
                        return await read_response(reader)

                    status, headers, keep = await asyncio.wait_for(exchange(*conn), self.attempt_timeout_s)
                    if not keep:
                        conn[1].close()
                        conn = None
                except (OSError, EOFError, ValueError, IndexError, asyncio.TimeoutError,
                        asyncio.IncompleteReadError, asyncio.LimitOverrunError) as e:
                    kind = ("timeout" if isinstance(e, asyncio.TimeoutError)
                            else "connect" if conn is None else "io")
                    self.transport[kind] += 1
                    self.first_transport_error = self.first_transport_error or f"{kind}: {e!r}"
                    self.second.transport += 1
                    if conn is not None:
                        conn[1].close()
                        conn = None
                if status is not None:
                    self.status[status] += 1
                    self.second.latencies.append(time.monotonic() - started)
                    if 200 <= status < 300:
                        self.second.ok += 1
                        self.outcome[k] = OK
                        if attempt > 1:
                            self.retried_events += 1
                        return conn
                    self.second.non2xx += 1
                if time.monotonic() - first > self.give_up_s:
                    self.outcome[k] = GAVE_UP
                    return conn
                self.retries += 1
                backoff = random.uniform(0, min(2.0, 0.1 * 2 ** (attempt - 1)))
                try:
                    backoff = max(backoff, float(headers.get("retry-after", 0)))
                except ValueError:
                    pass
                await asyncio.sleep(backoff)
        finally:
            self.in_flight -= 1


