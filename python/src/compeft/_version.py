"""The package version: the compeft release whose library it ships (CompeftVersion.string in Swift)."""

__version__ = "0.1.0"
