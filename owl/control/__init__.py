"""The control layer: generations, campaigns, scheduling, throttles, pauses, time triggers.

The design is in docs/control.md. Item state stays in :mod:`owl.board` and its scripts; this
package adds the board-wide control state (the control slot) and the scheduled claim path.
"""
