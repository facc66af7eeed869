from mcpkit.cli import main

main()
