"""`rag`: search, ask, compare texts, evaluate and start the web app from the command line."""
