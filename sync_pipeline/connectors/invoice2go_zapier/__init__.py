"""Invoice2go through a Zapier catch hook (import only): clients and products, each sent once, within the plan\x27s quota."""
