"""The driver: the one loop (:func:`run_search`) and the observers it tells about the search."""

from workflow.driver.loop import RunSummary, run_search
from workflow.driver.observers import Observer, Observers, SearchRun
from workflow.driver.replay import apply_immigrants

__all__ = ["Observer", "Observers", "RunSummary", "SearchRun", "apply_immigrants", "run_search"]
