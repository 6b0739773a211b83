"""Type stubs for pycoro.group."""
from types import TracebackType
from typing import Any, Callable, Iterable, Literal, Optional, Set, Tuple, TypeVar, Union

_T = TypeVar("_T")

from .hub import Hub, Task

def wait(
    tasks: Iterable[Task[Any]],
    timeout: Optional[Union[int, float]] = ...,
    return_when: str = ...,
) -> Tuple[Set[Task[Any]], Set[Task[Any]]]: ...

class TaskGroup:
    def __init__(self) -> None: ...
    def __enter__(self) -> TaskGroup: ...
    def __exit__(self, typ: Optional[type], exc: Optional[BaseException], tb: Optional[TracebackType]) -> bool: ...
    def spawn(self, fn: Callable[..., _T], *args: Any, **kwargs: Any) -> Task[_T]: ...
    def spawn_on(self, where: Union[int, Hub, Literal["any"]], fn: Callable[..., _T], *args: Any, **kwargs: Any) -> Task[_T]: ...
