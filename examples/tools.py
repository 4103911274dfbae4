"""Function tools for ``yc-runs create ... --tools-from examples/tools.py:get_weather``:
the schema comes from each function's signature, type hints and docstring."""

from typing import Any, Dict


def get_weather(city: str, unit: str = "celsius") -> Dict[str, Any]:
    """The current weather in a city."""
    return {"city": city, "temperature": 21, "unit": unit}


def lookup_order(order: str) -> Dict[str, Any]:
    """An order's delivery status."""
    return {"order": order, "status": "shipped"}


TOOLS = [get_weather, lookup_order]  # --tools-from examples/tools.py:TOOLS gives both
