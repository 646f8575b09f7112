"""HeavyExecutor: pretends to be an expensive model (the seed demo's executor, as in
scripts/demo_flow.py). Its bare @requests handler serves every endpoint: it sleeps `sleep` seconds,
upper-cases each document's text and tags it with processed_by=HeavyExecutor."""

import time

from jina import Executor, requests


class HeavyExecutor(Executor):
    def __init__(self, sleep: float = 3.0, **kwargs):
        super().__init__(**kwargs)
        self._sleep = sleep

    @requests
    def process(self, docs, **kwargs):
        time.sleep(self._sleep)
        for d in docs:
            if d.text:
                d.text = d.text.upper()
            d.tags["processed_by"] = "HeavyExecutor"
