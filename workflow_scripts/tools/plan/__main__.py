from workflow_scripts.tools.plan.cli import main

if __name__ == "__main__":
    main()
