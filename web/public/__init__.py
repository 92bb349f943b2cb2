"""一案一码: the parties' public case page (progress only, behind a second factor) and the PIN staff issue."""
