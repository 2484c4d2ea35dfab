"""One module per resource; each exposes ``HANDLERS``, the route handlers it contributes."""
