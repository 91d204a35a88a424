"""``tether demo``: the offline support copilot that shows the whole system on a laptop."""
