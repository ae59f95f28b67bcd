from owl.cli.main import main

main()
