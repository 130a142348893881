"""The component package's plugin entry point: the Python language host runs
``python <this directory> <engine address> [flags]`` (PulumiPlugin.yaml). Everything is in
:mod:`mesh_components.components.package`; see README.md here."""
from mesh_components.components.package import main

if __name__ == "__main__":
    main()
