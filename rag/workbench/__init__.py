"""The recall workbench: browse a knowledge base's chunks and explain why a chunk was not retrieved."""
