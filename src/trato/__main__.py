from trato.cli import main

main()
