"""``owl watch``: the live terminal board (textual).

Modules, one concern each:

``source``   what a refresh reads from the board (counters, ready-queue heads, agents, dead)
``grid``     the OPUS-style grid, paged on the server, with filter and search
``actions``  hold / release / retry planned item by item, then applied
``app``      the textual application: tabs, the reader thread, the confirmation screen
"""
