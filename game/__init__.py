"""The likeness stand-in game: 267 named parameters -> bone-driven 3D head -> screenshot."""


def __getattr__(name):
    # Lazy, so `import game.parameters` stays light and no GL/renderer code loads until a Game is made.
    if name == "Game":
        from game.engine import Game

        return Game
    raise AttributeError(f"module 'game' has no attribute {name!r}")


__all__ = ["Game"]
