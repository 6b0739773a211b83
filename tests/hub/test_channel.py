"""Channel and select."""
import pytest

import pycoro
from pycoro import Cancelled, ChannelClosed, Timeout


def test_rendezvous_send_waits_for_receiver():
    log = []

    def sender(ch):
        ch.send("a")
        log.append("sent")

    def main():
        ch = pycoro.Channel()
        t = pycoro.spawn(sender, ch)
        pycoro.sleep(0)
        pycoro.sleep(0)
        assert log == [] and not t.done()  # no receiver yet
        assert ch.recv() == "a"
        t.join()
        assert log == ["sent"]

    pycoro.run(main)


def test_buffered_channel_and_iteration():
    def main():
        ch = pycoro.Channel(3)
        for i in range(3):
            ch.send(i)  # never blocks: capacity 3
        assert len(ch) == 3
        ch.close()
        assert ch.closed
        assert list(ch) == [0, 1, 2]
        with pytest.raises(ChannelClosed):
            ch.recv()

    pycoro.run(main)


def test_send_on_closed_channel():
    def main():
        ch = pycoro.Channel(1)
        ch.close()
        ch.close()  # idempotent
        with pytest.raises(ChannelClosed):
            ch.send(1)

    pycoro.run(main)


def test_close_wakes_waiting_receivers_and_senders():
    def main():
        ch = pycoro.Channel()
        r = pycoro.spawn(ch.recv)
        full = pycoro.Channel(0)
        s = pycoro.spawn(full.send, 1)
        pycoro.sleep(0)
        ch.close()
        full.close()
        with pytest.raises(ChannelClosed):
            r.join()
        with pytest.raises(ChannelClosed):
            s.join()

    pycoro.run(main)


def test_channel_fifo_many_producers():
    def main():
        ch = pycoro.Channel(2)
        out = []

        def prod(tag):
            for i in range(5):
                ch.send((tag, i))

        ps = [pycoro.spawn(prod, t) for t in "ab"]

        def closer():
            for p in ps:
                p.join()
            ch.close()

        pycoro.spawn(closer)
        out = list(ch)
        for tag in "ab":
            assert [i for t, i in out if t == tag] == list(range(5))
        assert len(out) == 10

    pycoro.run(main)


def test_select_recv_and_send():
    def main():
        a, b = pycoro.Channel(), pycoro.Channel()
        pycoro.spawn(b.send, "from b")
        ch, v = pycoro.select(recv=[a, b])
        assert ch is b and v == "from b"
        out = pycoro.Channel()
        r = pycoro.spawn(out.recv)
        ch, v = pycoro.select(recv=[a], send=[(out, 42)])
        assert ch is out and v is None
        assert r.join() == 42

    pycoro.run(main)


def test_select_performs_exactly_one_operation():
    def main():
        a, b = pycoro.Channel(1), pycoro.Channel(1)
        a.send(1)
        b.send(2)
        ch, v = pycoro.select(recv=[a, b])
        assert (ch, v) == (a, 1)
        assert len(a) == 0 and len(b) == 1  # b untouched
        # a blocked select completes through one channel only
        c, d = pycoro.Channel(), pycoro.Channel()
        sel = pycoro.spawn(pycoro.select, recv=[c, d])
        pycoro.sleep(0)
        c_sender = pycoro.spawn(c.send, "c")
        d_sender = pycoro.spawn(d.send, "d")
        pycoro.sleep(0)
        assert sel.join() == (c, "c")
        assert c_sender.done() and not d_sender.done()  # d's value is still waiting
        assert d.recv() == "d"

    pycoro.run(main)


def test_select_timeout_and_cancel_leave_no_waiter_behind():
    def main():
        a = pycoro.Channel()
        with pytest.raises(Timeout):
            pycoro.select(recv=[a], timeout=0.005)
        with pytest.raises(Timeout):
            pycoro.select(recv=[a], timeout=0)
        t = pycoro.spawn(pycoro.select, recv=[a])
        pycoro.sleep(0)
        t.cancel()
        with pytest.raises(Cancelled):
            t.join()
        # a send now must not be swallowed by the dead selects
        r = pycoro.spawn(a.recv)
        pycoro.sleep(0)
        a.send("x")
        assert r.join() == "x"

    pycoro.run(main)


def test_select_closed_channel_raises():
    def main():
        a = pycoro.Channel()
        a.close()
        with pytest.raises(ChannelClosed) as info:
            pycoro.select(recv=[a])
        assert info.value.channel is a
        b = pycoro.Channel()
        sel = pycoro.spawn(pycoro.select, recv=[b])
        pycoro.sleep(0)
        b.close()
        with pytest.raises(ChannelClosed):
            sel.join()
        with pytest.raises(ValueError):
            pycoro.select()

    pycoro.run(main)


def test_bad_capacity():
    with pytest.raises(ValueError):
        pycoro.Channel(-1)
