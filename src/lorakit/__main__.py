from lorakit.cli.app import main

main()
