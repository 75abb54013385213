"""The operators' and safety leads' web console: the websocket hub and the browser UI."""
