"""{{ title }}: one tool, one resource and one prompt.

Start here, then add capabilities: the SDK turns type hints into input/output schemas and
docstrings into descriptions, so a typed function is all a tool needs.
"""

from __future__ import annotations

from pathlib import Path

from mcp.server.mcpserver import MCPServer
from pydantic import BaseModel, Field

# The folder name is the server's name (and its stack's: McpServer-<name>), here and in the Lambda zip.
SERVER_NAME = Path(__file__).resolve().parent.name

mcp = MCPServer(SERVER_NAME, version="0.1.0", instructions="{{ description }}")


class TextStats(BaseModel):
    words: int = Field(description="Whitespace-separated words.")
    characters: int = Field(description="Characters, spaces included.")
    lines: int = Field(description="Lines (a trailing newline does not start a new one).")


@mcp.tool()
def text_stats(text: str) -> TextStats:
    """Count the words, characters and lines of a text."""
    return TextStats(words=len(text.split()), characters=len(text), lines=len(text.splitlines()))


@mcp.resource(f"{SERVER_NAME}://about", mime_type="text/markdown")
def about() -> str:
    """What this server offers."""
    return f"# {SERVER_NAME}\n\n- tool `text_stats`: word, character and line counts\n- prompt `summarise`\n"


@mcp.prompt()
def summarise(text: str, sentences: int = 3) -> str:
    """Ask the model for a short summary of a text."""
    return f"Summarise the following text in at most {sentences} sentences, keeping names and numbers exact:\n\n{text}"
