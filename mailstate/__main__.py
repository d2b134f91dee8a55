from mailstate.cli import main

main()
