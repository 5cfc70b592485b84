"""The package's version, in a leaf module: the layers that print it need not import the
package root (which names the API)."""

__version__ = "0.1.0"
