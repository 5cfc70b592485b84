from driftwarden.cli import main

main()
