from opshub.cli import main

main()
