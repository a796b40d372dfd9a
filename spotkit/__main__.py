from spotkit.cli import main

main()
