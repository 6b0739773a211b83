"""A long-running server must not lose recursion budget per connection.

A fiber starts with its starter's recursion depth (greenlet's rule).  When a
task parked deep inside library code switched straight into a task that had
never run, each generation of tasks started deeper, and after a few hundred
connections handlers died with RecursionError.  Tasks are now started from
the hub loop (or from a finished task's base), so the budget stays flat."""

import pycoro
from pycoro import net


def _available_depth():
    def down(k):
        try:
            return down(k + 1)
        except RecursionError:
            return k

    return down(0)


def test_recursion_budget_is_flat_across_task_generations(no_leaks):
    budgets = []

    def deep_park(k, stream):
        if k:
            return deep_park(k - 1, stream)   # park 30 frames deep, like a framework would
        return stream.readline()

    def handler(stream):
        budgets.append(_available_depth())
        line = deep_park(30, stream)
        stream.sendall(line)

    def main():
        with net.start_server(handler, "127.0.0.1", 0) as srv:
            limit = pycoro.Semaphore(8)

            def client(i):
                with limit:
                    with net.connect_tcp("127.0.0.1", srv.port) as c:
                        c.sendall(b"%d\n" % i)
                        assert c.readline() == b"%d\n" % i

            tasks = [pycoro.spawn(client, i) for i in range(400)]
            for t in tasks:
                t.join()
            while srv.connections:
                pycoro.sleep(0.001)

    pycoro.run(main)
    assert len(budgets) == 400
    assert min(budgets) >= max(budgets) - 20, (min(budgets), max(budgets))
