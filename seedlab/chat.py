"""`seedlab model chat`: one question, or a conversation in the terminal with streamed answers."""

from __future__ import annotations

from collections.abc import Callable

from seedlab.backends import Backend, Message, ModelError, Request

HELP = "Type a message; /clear forgets the conversation, /exit (or Ctrl-D) leaves."


# With --temperature 0.2 (the CLI default) this is what SmolLM2's model card suggests; greedy decoding
# of the 135M model in Q4_1 drifts into loops more often.
TOP_P = 0.9


def ask(backend: Backend, history: list[Message], question: str, max_tokens: int, temperature: float,
        write: Callable[[str], None], seed: int = 0) -> str:
    """Stream one answer to `question` after `history`, writing pieces as they come; return the answer."""
    messages = history + [{"role": "user", "content": question}]
    request = Request(messages=messages, max_tokens=max_tokens, temperature=temperature, top_p=TOP_P, seed=seed)
    pieces = []
    for piece in backend.stream(request):
        pieces.append(piece)
        write(piece)
    write("\n")
    return "".join(pieces).strip()


def chat_loop(backend: Backend, system: str | None, max_tokens: int, temperature: float,
              read: Callable[[], str | None], write: Callable[[str], None], seed: int = 0) -> None:
    """Read lines until /exit or end of input; keep the conversation as history."""
    start: list[Message] = [{"role": "system", "content": system}] if system else []
    history = list(start)
    write(f"Chatting with {backend.model_id}. {HELP}\n")
    while True:
        line = read()
        if line is None or line.strip() == "/exit":
            return
        if line.strip() == "/clear":
            history = list(start)
            write("(conversation cleared)\n")
            continue
        if not line.strip():
            continue
        try:
            answer = ask(backend, history, line, max_tokens, temperature, write, seed)
        except ModelError as exc:  # e.g. the conversation outgrew the context: keep the session alive
            write(f"error: {exc}; /clear starts over\n")
            continue
        history += [{"role": "user", "content": line}, {"role": "assistant", "content": answer}]
