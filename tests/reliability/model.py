"""A world of fibers driven by operations, checked against a pure-Python model.

`World` owns a set of real `pycoro.Fiber`s of one thread and a model of what
each operation must do.  Every fiber runs the same body (`World._body`): it
reports to the driver (the thread's main fiber) and waits; the driver hands
the *active* fiber (the one the model says holds control) a command, which
it carries out (switch to a fiber with a payload, throw into one, return,
raise, keep a reference to a fiber in a local); whoever receives control
logs what arrived and reports back.  After every operation the world checks
against the model:

* who runs next (which fiber reported, or what the driver itself received),
* which value or exception arrived where (the event log),
* which `finally` blocks ran (each fiber's at most once, exactly when the
  model says the fiber ended: by returning, raising, FiberExit, or being
  collected while suspended),
* which fiber objects are still alive (weak references), including those
  freed by reference counting and those only `gc.collect()` can free
  (cycles through a suspended fiber's frame).

Model of references (what keeps a fiber object alive):
  the world's registry (roots), `parent` links, the `held` list in a
  suspended fiber's frame, and the object a suspended fiber's pending
  `switch`/`throw` call was made on (it sits on that frame's value stack).
  The GC sees all of them: a suspended fiber's frames are traversed with
  their value stacks (pystate.c), so every cycle among garbage fibers is
  collected and nothing is left over at the end.
"""
import gc
import threading
import weakref

from pycoro import Fiber, FiberError, FiberExit, current

NEW, LIVE, DEAD = "new", "live", "dead"   # LIVE: started, not finished

# gc.collect() returns at once, collecting nothing, while another thread is
# collecting: the worlds of concurrent threads serialize their collections.
GC_LOCK = threading.Lock()


class StressError(Exception):
    pass


def _plain(v):
    """A received value as plain data (never keeps objects alive)."""
    if isinstance(v, FiberExit):
        # The FiberExit a fiber died of comes back as a value; the same
        # object may still sit on its thrower's value stack (a fiber
        # suspended in throw(FiberExit())), and its traceback holds the dead
        # fiber's frame and what that frame held: a cycle the model does not
        # count (refcounting cannot free it; found by fuzz_ops.py).  Cut it.
        v.__traceback__ = None
        return ("exitvalue",)
    if isinstance(v, tuple):
        return v
    return ("odd", repr(v))


class World:
    MAIN = 0

    def __init__(self):
        self.main = current()
        self.log = []
        self.registry = {}            # id -> Fiber (the roots we hold)
        self.refs = {0: weakref.ref(self.main)}
        # model
        self.state = {0: LIVE}
        self.parent = {0: None}
        self.holds = {0: []}
        self.waiting_on = {0: None}
        self.alive = {0}              # model: fiber objects not yet freed
        self.active = 0
        self.next_id = 1
        self.expected_log = []
        self.ops = 0

    # ------------------------------------------------------------- real side
    def obj(self, i):
        o = self.refs[i]()
        assert o is not None, f"fiber {i} was freed but the model says it is alive"
        return o

    def _body(self, first):
        me = self._starting
        log = self.log
        log.append(("start", me))
        held = []
        if isinstance(first, BaseException):
            # A fiber started with the FiberExit that ended its child: the
            # value run() was called with is also held where the GC does not
            # look (the fiber's start arguments, fiber.c), and its traceback
            # would tie this fiber to the child's frame in a cycle no
            # collector finds (greenlet's limit too; see fiber.c).
            first.__traceback__ = None
        v = _plain(first)
        try:
            while True:
                if v[0] == "cmd":
                    op = v[1]
                    v = None
                    kind = op[0]
                    try:
                        if kind == "switch":
                            v = _plain(self.obj(op[1]).switch(("data", op[2])))
                        elif kind == "throw":
                            # built inline: a local would keep the exception
                            # (and through its traceback, this frame) alive
                            v = _plain(self.obj(op[1]).throw(
                                FiberExit() if op[3] else StressError(op[2])))
                        elif kind == "return":
                            return ("ret", op[1])
                        elif kind == "raise":
                            raise StressError(op[1])
                        elif kind == "hold":
                            held.append(self.obj(op[1]))
                            v = ("held",)
                        else:
                            raise AssertionError(op)
                    except StressError as e:
                        if kind == "raise":
                            raise
                        code = e.args[0]
                        # A thrown exception also sits on the thrower's value
                        # stack (the pending throw() call's argument), which
                        # the GC cannot see; its traceback would tie this
                        # frame (and what it holds) to that fiber in a cycle
                        # no collector can find, greenlet's limit too.
                        e.__traceback__ = None
                        del e
                        log.append(("exc", me, code))
                        v = ("reported",)
                    continue
                if v[0] not in ("held", "reported"):
                    log.append(("recv", me, v))
                v = _plain(self.main.switch(("at", me)))
        finally:
            log.append(("finally", me))

    def new_fiber(self, parent=None):
        i = self.next_id
        self.next_id += 1
        self._starting = None
        f = Fiber(self._make_run(i))
        if parent is not None:
            f.parent = self.obj(parent)
        self.registry[i] = f
        self.refs[i] = weakref.ref(f)
        del f
        self.state[i] = NEW
        self.parent[i] = self.MAIN if parent is None else parent
        self.holds[i] = []
        self.waiting_on[i] = None
        self.alive.add(i)
        return i

    def _make_run(self, i):
        def run(first):
            self._starting = i
            return self._body(first)
        return run

    # ------------------------------------------------------------ the model
    def _resolve(self, t, error):
        while t is not None:
            s = self.state[t]
            if s == LIVE:
                return t
            if s == NEW:
                if not error:
                    return t
                self.state[t] = DEAD          # killed unstarted: no events
            t = self.parent[t]
        raise AssertionError("every parent chain ends at main")

    def _die(self, x):
        self.expected_log.append(("finally", x))
        self.state[x] = DEAD
        self.holds[x] = []
        self.waiting_on[x] = None

    def _deliver(self, t, kind, payload):
        """Control goes to t with a value ("data", "value", "exitvalue") or an
        exception ("exc", "exit").  Returns what the driver observes."""
        while True:
            t = self._resolve(t, kind in ("exc", "exit"))
            if t == self.MAIN:
                self.active = self.MAIN
                if kind == "data":
                    return ("got", ("data", payload))
                if kind == "value":
                    return ("got", payload)
                if kind == "exitvalue":
                    return ("got", ("exitvalue",))
                if kind == "exc":
                    return ("raised", payload)
                return ("raised", "FiberExit")
            if self.state[t] == NEW:
                self.state[t] = LIVE
                self.expected_log.append(("start", t))
            self.waiting_on[t] = None
            if kind == "exit":
                self._die(t)
                kind, payload = "exitvalue", None
                t = self.parent[t]
                continue
            if kind == "exc":
                self.expected_log.append(("exc", t, payload))
            elif kind == "data":
                self.expected_log.append(("recv", t, ("data", payload)))
            elif kind == "value":
                self.expected_log.append(("recv", t, payload))
            else:
                self.expected_log.append(("recv", t, ("exitvalue",)))
            self.waiting_on[t] = self.MAIN
            self.active = t
            return ("got", ("at", t))

    def _edges(self, x):
        out = []
        if self.parent[x] is not None:
            out.append(self.parent[x])
        if self.state[x] == LIVE:
            out.extend(self.holds[x])
            if self.waiting_on[x] is not None:
                out.append(self.waiting_on[x])
        return out

    def _reach(self, roots):
        seen, todo = set(), list(roots)
        while todo:
            x = todo.pop()
            if x in seen or x not in self.alive:
                continue
            seen.add(x)
            todo.extend(self._edges(x))
        return seen

    def _free(self, x):
        if self.state[x] == LIVE and x != self.MAIN:
            self._die(x)                      # finalizer: FiberExit
        if x == self.active:
            self.active = self.MAIN
        self.alive.discard(x)

    def _refcount_cascade(self):
        """Free what reference counting frees: garbage no live object (nor
        other remaining garbage) refers to, repeatedly."""
        while True:
            roots = set(self.registry) | {self.MAIN}
            reachable = self._reach(roots)
            garbage = self.alive - reachable
            referred = set()
            for g in garbage:
                referred.update(self._edges(g))
            free = [g for g in garbage if g not in referred]
            if not free:
                return
            for g in free:
                self._free(g)

    def _collect(self):
        # The GC sees parent links, frame locals and value stacks.
        self._refcount_cascade()
        roots = set(self.registry) | {self.MAIN}
        garbage = self.alive - self._reach(roots)
        for g in sorted(garbage):
            self._free(g)
        self._refcount_cascade()

    # ------------------------------------------------------------ operations
    def _run_as_actor(self, op):
        """The active fiber performs op; returns what the driver observes."""
        try:
            if self.active == self.MAIN:
                kind = op[0]
                if kind == "switch":
                    r = self.obj(op[1]).switch(("data", op[2]))
                else:
                    r = self.obj(op[1]).throw(FiberExit() if op[3] else StressError(op[2]))
            else:
                r = self.obj(self.active).switch(("cmd", op))
            return ("got", _plain(r))
        except StressError as e:
            return ("raised", e.args[0])
        except FiberExit:
            return ("raised", "FiberExit")

    def _model_op(self, op):
        a = self.active
        kind = op[0]
        if kind == "switch":
            self.waiting_on[a] = op[1] if a != self.MAIN else None
            return self._deliver(op[1], "data", op[2])
        if kind == "throw":
            self.waiting_on[a] = op[1] if a != self.MAIN else None
            if op[3]:
                return self._deliver(op[1], "exit", None)
            return self._deliver(op[1], "exc", op[2])
        if kind == "return":
            self._die(a)
            return self._deliver(self.parent[a], "value", ("ret", op[1]))
        if kind == "raise":
            self._die(a)
            return self._deliver(self.parent[a], "exc", op[1])
        if kind == "hold":
            self.holds[a].append(op[1])
            self.waiting_on[a] = self.MAIN
            return ("got", ("at", a))
        raise AssertionError(op)

    def apply(self, op):
        """Run one operation on the real fibers and on the model; compare."""
        self.ops += 1
        kind = op[0]
        self.expected_log = []
        start = len(self.log)
        if kind in ("switch", "throw", "return", "raise", "hold"):
            if kind in ("return", "raise", "hold") and self.active == self.MAIN:
                return
            for ref in op[1:2] if kind in ("switch", "throw", "hold") else ():
                if ref not in self.alive:
                    return
            got = self._run_as_actor(op)
            want = self._model_op(op)
            assert got == want, f"op {op}: observed {got}, model says {want}"
            self._refcount_cascade()
        elif kind == "parent":
            _, i, j = op
            if i not in self.alive or j not in self.alive:
                return
            cyclic = False
            q = j
            while q is not None:
                if q == i:
                    cyclic = True
                q = self.parent[q]
            try:
                self.obj(i).parent = self.obj(j)
                err = None
            except (ValueError, AttributeError) as e:
                err = str(e)
            if i == self.MAIN:
                assert err is not None and "main" in err, err
            elif cyclic:
                assert err is not None and "cyclic" in err, err
            else:
                assert err is None, err
                self.parent[i] = j
            self._refcount_cascade()
        elif kind == "drop":
            i = op[1]
            if i not in self.registry:
                return
            del self.registry[i]
            self._refcount_cascade()
        elif kind == "collect":
            with GC_LOCK:
                gc.collect()
            self._collect()
        elif kind == "new":
            p = op[1]
            self.new_fiber(p if p in self.alive else None)
        elif kind == "foreign":
            # a fiber of another thread cannot be switched to from here
            f = op[1]
            try:
                f.switch(1)
            except FiberError:
                pass
            else:
                raise AssertionError("switched to another thread's fiber")
            f = None
        else:
            raise AssertionError(op)
        self.check(op, start)

    def check(self, op, start):
        got = self.log[start:]
        want = self.expected_log
        key = lambda e: (e[0] == "finally", repr(e))
        # switch events in exact order; finally blocks as a set (the order in
        # which a cascade of frees runs them is the allocator's business)
        assert [e for e in got if e[0] != "finally"] == [e for e in want if e[0] != "finally"], (
            f"op {op}: events {got}, model {want}")
        assert sorted(got, key=key) == sorted(want, key=key), f"op {op}: events {got}, model {want}"
        for i, r in self.refs.items():
            assert (r() is not None) == (i in self.alive), (
                f"op {op}: fiber {i} alive={r() is not None}, model alive={i in self.alive}")
            o = r()
            if o is not None:
                dead = self.state[i] == DEAD
                assert o.dead == dead, f"op {op}: fiber {i} dead={o.dead}, model {self.state[i]}"
                if i != self.MAIN:
                    assert o.parent is self.refs[self.parent[i]](), f"op {op}: parent of {i}"
            del o
        assert current() is self.main

    def finish(self):
        """End every fiber: drop all references and collect; the model says
        which finally blocks must run.  Afterwards nothing may be alive."""
        self.expected_log = []
        start = len(self.log)
        self.active = self.MAIN
        self.registry.clear()
        self._refcount_cascade()
        with GC_LOCK:
            gc.collect()
        self._collect()
        self.check(("finish",), start)
        leaked = sorted(self.alive - {self.MAIN})
        assert leaked == [], f"fibers the model expects to survive the end: {leaked}"
        return leaked
