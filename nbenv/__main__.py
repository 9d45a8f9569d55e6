from nbenv.cli import main

main()
